// 64-bit hash of unescaped UTF-8 bytes. 32-bit hashes collide around 100k titles;
// 64 bits make a collision among millions of keys negligible. Never returns 0 (0 means "absent").
const P1: u64 = 0x9e3779b185ebca87;
const P2: u64 = 0xc2b2ae3d27d4eb4f;

@inline function fmix(h: u64): u64 {
  h ^= h >> 33; h *= 0xff51afd7ed558ccd;
  h ^= h >> 33; h *= 0xc4ceb9fe1a85ec53;
  h ^= h >> 33;
  return h;
}

/** Hash of the bytes [ptr, ptr+len) with a seed; never 0. */
export function hashBytes(ptr: usize, len: i32, seed: u64): u64 {
  let h: u64 = seed ^ (<u64>len * P1);
  let p = ptr;
  const end8 = ptr + (<usize>len & ~7);
  while (p < end8) {
    h = rotl<u64>(h ^ (load<u64>(p) * P2), 29) * P1;
    p += 8;
  }
  let tail: u64 = 0;
  let shift: u64 = 0;
  const end = ptr + <usize>len;
  while (p < end) { tail |= (<u64>load<u8>(p)) << shift; shift += 8; p++; }
  h = rotl<u64>(h ^ (tail * P2), 29) * P1;
  h = fmix(h);
  return h == 0 ? 1 : h;
}

/** Combines a property hash and a title hash into the title key's hash; never 0. */
export function combineHash(a: u64, b: u64): u64 {
  const h = fmix(a ^ rotl<u64>(b * P1, 31) ^ P2);
  return h == 0 ? 1 : h;
}
