// kafkajs ships no types for its internal modules; those Vigil patches (see kafkajs-patches.ts).
declare module 'kafkajs/src/network/requestQueue/index.js' {
  const RequestQueue: unknown;
  export default RequestQueue;
}

declare module 'kafkajs/src/consumer/consumerGroup.js' {
  const ConsumerGroup: unknown;
  export default ConsumerGroup;
}

// Pure JavaScript decompressors without types of their own (see kafka-codecs.ts).
declare module 'snappyjs' {
  const snappyjs: { uncompress(data: Uint8Array): Uint8Array; compress(data: Uint8Array): Uint8Array };
  export default snappyjs;
}

declare module 'lz4js' {
  const lz4js: { decompress(data: Uint8Array, maxSize?: number): Uint8Array; compress(data: Uint8Array, maxSize?: number): Uint8Array };
  export default lz4js;
}
