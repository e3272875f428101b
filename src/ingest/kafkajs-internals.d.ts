// kafkajs ships no types for its internal modules; the one Vigil patches (see kafkajs-patches.ts).
declare module 'kafkajs/src/network/requestQueue/index.js' {
  const RequestQueue: unknown;
  export default RequestQueue;
}
