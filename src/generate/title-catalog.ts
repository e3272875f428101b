import type { Prng } from './prng.ts';

/** The kind of catalog a property publishes, which decides how its titles read. */
export type TitleFlavor = 'network' | 'documentary' | 'marketing' | 'games' | 'vlog';

// Pools mix plain ASCII with accents, CJK, Hangul, emoji, quotes and backslashes, in roughly the
// proportions a real catalog export has them, so decoders meet every escaping case in ordinary data.
const SHOWS = [
  'Grupo Formula 104.1', 'Enlace', 'Morning Briefing', 'The Late Desk', 'Market Watch', 'Noticias del Día',
  'Café Society', 'Weekend Kitchen', 'El Niño y la Niña', 'Tokyo Drift Diaries 東京', 'Sports Tonight',
  'Crime Files', 'Le Journal de 20h', 'Straße der Lieder', 'Seoul Nights 서울', 'The "Real" Story',
  'Inside the Newsroom', 'Weather Now', 'Family Hour', 'Comedy Cellar Live', 'Año Nuevo Special',
];
const EPISODES = [
  'Pilot', 'The Return', 'Breaking Point', 'Lost & Found', 'Mañana', 'Déjà Vu', 'Night Shift',
  'Homecoming', 'Reunión', 'The "Big" Game', 'Aftermath', '北京の朝', 'Opening Bell', 'Season Finale',
  'Back\\Slash Mystery', 'Crossroads', 'Zero Hour', 'Naïve', 'Über Alles? No', 'First Light',
];
const DOC_SERIES = [
  'Nature', 'Frontline', 'American Experience', 'Great Performances', 'Antiques Roadshow', 'NOVA',
  'Independent Lens', 'Masterpiece', 'Secrets of the Dead', 'Civilizations', 'Rick Steves\' Europe',
  'Cocina Mexicana', 'Océans', 'La Tierra', 'History Detectives',
];
const DOC_TOPICS = [
  'The Coral Reef', 'Inside the Hive', 'Volcanoes of Iceland', 'The Silk Road 絲綢之路', 'Pompeii',
  'Jazz in Harlem', 'Ballet Russe', 'Mole Poblano', 'Año del Dragón', 'The Moon Landing', 'Amazonía',
  'Niños del Sol', 'Glaciers', 'Cathedrals of Europe', 'Émigrés', 'The "Lost" Tapes', 'Kyoto 京都',
  'Deep Sea Giants', 'The Great Migration', 'Côte d\'Azur',
];
const MARKETING = [
  'Product tour', 'Webinar', 'Customer story', 'Onboarding', 'Feature spotlight', 'Demo day',
  'How-to', 'Quarterly update', 'Case study', 'Live Q&A',
];
const MARKETING_TOPICS = [
  'Analytics dashboard', 'API keys & webhooks', 'Billing FAQ', 'Integrations', 'Acme Corp', 'Müller GmbH',
  'São Paulo launch', 'Getting started', 'SSO setup', 'Pricing "Pro" plan', 'C:\\exports\\report.csv explained',
  'Zero to one', 'Team roles', 'Mobile app', 'Security & compliance', 'データ移行', 'Roadmap 2027',
];
const GAMES = [
  'Neon Drift', 'Crown of Ash', 'Ōkami Tales', 'Sakura Blade 桜', 'Château Noir', 'Fútbol Manía',
  'Pixel Knights', 'Starfall', 'Hollow Tide', '銀河の旅', 'Dragon\'s "Last" Stand', 'Mech Arena',
  'Frostbite Saga', 'Lumière', 'Retro Racer \\ Turbo', 'Kingdom Rush', 'Abyss Walker', 'Los Muertos',
];
const GAME_FORMATS = [
  'Review', 'Trailer', 'Gameplay', 'Walkthrough', 'Speedrun', 'Boss Guide', 'Patch Notes', 'First 15 Minutes',
  'Análisis', 'Easter Eggs',
];
const VLOG_THINGS = [
  'my morning routine', 'café hopping in Lisbon', 'ramen in Osaka 🍜', 'desk setup tour', 'rainy day baking',
  'why I quit "hustle culture"', 'España road trip', 'thrift haul 🛍️', 'learning 日本語', 'garden update 🌱',
  'backpack\\packing list', 'Q&A night', 'crème brûlée fail', 'moving day 📦', 'first marathon',
];
const VLOG_EMOJI = ['🎬', '🔥', '✨', '❤️', '😂', '🚀'];

/** Builds `count` distinct titles for a flavor, most popular first (index 0 is rank 1). */
export function buildTitleCatalog(flavor: TitleFlavor, count: number, prng: Prng): string[] {
  const seen = new Set<string>();
  const titles: string[] = [];
  while (titles.length < count) {
    let title = makeTitle(flavor, prng);
    for (let retry = 0; retry < 8 && seen.has(title); retry++) title = makeTitle(flavor, prng);
    // Real catalogs do carry re-uploads under the same name with a counter.
    const base = title;
    for (let copy = 2; seen.has(title); copy++) title = `${base} (${copy})`;
    seen.add(title);
    titles.push(title);
  }
  return titles;
}

function pick<T>(pool: readonly T[], prng: Prng): T {
  return pool[prng.int(pool.length)];
}

function makeTitle(flavor: TitleFlavor, prng: Prng): string {
  const form = prng.int(4);
  switch (flavor) {
    case 'network':
      if (form === 0) return pick(SHOWS, prng);
      if (form === 1) return `${pick(SHOWS, prng)} S${1 + prng.int(9)}E${1 + prng.int(24)}`;
      if (form === 2) return `${pick(SHOWS, prng)}: ${pick(EPISODES, prng)}`;
      return `${pick(SHOWS, prng)} — ${pick(EPISODES, prng)} (Part ${1 + prng.int(6)})`;
    case 'documentary':
      if (form === 0) return `${pick(DOC_SERIES, prng)}: ${pick(DOC_TOPICS, prng)}`;
      if (form === 1) return `${pick(DOC_TOPICS, prng)}`;
      if (form === 2) return `${pick(DOC_SERIES, prng)} | ${pick(DOC_TOPICS, prng)} | Episode ${1 + prng.int(12)}`;
      return `${pick(DOC_SERIES, prng)}: ${pick(DOC_TOPICS, prng)} (${1990 + prng.int(36)})`;
    case 'marketing':
      if (form === 0) return `${pick(MARKETING, prng)}: ${pick(MARKETING_TOPICS, prng)}`;
      if (form === 1) return `${pick(MARKETING, prng)} #${1 + prng.int(60)} — ${pick(MARKETING_TOPICS, prng)}`;
      if (form === 2) return `${pick(MARKETING_TOPICS, prng)} (v${1 + prng.int(4)}.${prng.int(10)})`;
      return `final_${pick(MARKETING_TOPICS, prng).toLowerCase().replace(/ /g, '_')}_${1 + prng.int(30)}.mp4`;
    case 'games':
      if (form === 0) return `${pick(GAMES, prng)} ${pick(GAME_FORMATS, prng)}`;
      if (form === 1) return `${pick(GAMES, prng)} — ${pick(GAME_FORMATS, prng)} Part ${1 + prng.int(20)}`;
      if (form === 2) return `Daily Fix: ${pick(GAMES, prng)} ${pick(GAME_FORMATS, prng)}`;
      return `${pick(GAMES, prng)}: ${pick(GAME_FORMATS, prng)} [${['PS5', 'Xbox', 'PC', 'Switch'][prng.int(4)]}]`;
    case 'vlog':
      if (form === 0) return `Vlog #${1 + prng.int(300)}: ${pick(VLOG_THINGS, prng)}`;
      if (form === 1) return `${pick(VLOG_EMOJI, prng)} ${pick(VLOG_THINGS, prng)}`;
      if (form === 2) return `${pick(VLOG_THINGS, prng)} ${pick(VLOG_EMOJI, prng)}`;
      return `week ${1 + prng.int(52)} — ${pick(VLOG_THINGS, prng)}`;
  }
}
