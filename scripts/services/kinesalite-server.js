// Starts kinesalite (in memory) bound to one host only; its own CLI listens on every interface.
// Usage: node kinesalite-server.js HOST PORT
import kinesalite from 'kinesalite';

const [host, port] = process.argv.slice(2);
const server = kinesalite({ createStreamMs: 50, deleteStreamMs: 50, updateStreamMs: 50, shardLimit: 100 });
server.listen(Number(port), host, () => console.log(`kinesalite listening on http://${host}:${port}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
