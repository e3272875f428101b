// The kernel's exports; everything is implemented in the modules named here.
export { init, advanceWatermark, finish, stateVersion, supportedStateVersion, stateMagic, keyCount, cellCount, openCount, maxTs, nextTick, counter, heapTop, headerPtr } from './kernel';
export { setParam, setProfileParam, setProfileHash, clearProfileHashes } from './params';
export { rebindProfiles } from './store';
export { ingestPacked } from './ingest';
export {
  decodeChunk, inputPtr, inputCap, fixupPtr, fixupCap, ownerOffset, ownerLength, outputPtr, chunkMaxTs,
  chunkRecords, chunkFallbacks, fallbackStart, fallbackEnd, statusCount, sampleCount, sampleStart,
  sampleEnd, sampleStatus, groupOf, ownerOfGroup,
} from './chunk';
export { setFieldName, setMaxLineBytes } from './decode';
export { hashBytes } from './hash';
export { dumpCells, dumpNextCursor, dumpAtMs, dumpFields } from './dump';
