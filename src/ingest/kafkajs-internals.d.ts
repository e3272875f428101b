// kafkajs ships no types for its internal modules; those Vigil patches (see kafkajs-patches.ts).
declare module 'kafkajs/src/network/requestQueue/index.js' {
  const RequestQueue: unknown;
  export default RequestQueue;
}

declare module 'kafkajs/src/consumer/consumerGroup.js' {
  const ConsumerGroup: unknown;
  export default ConsumerGroup;
}
