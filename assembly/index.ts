// The kernel's exports; everything is implemented in the modules named here.
export { init, finish, stateVersion, supportedStateVersion, stateMagic, keyCount, cellCount, openCount, maxTs, nextTick, counter, heapTop, headerPtr } from './kernel';
export { setParam, setProfileParam, setProfileHash, clearProfileHashes, paramScopeFields } from './params';
export { rebindProfiles, resetChanges } from './store';
export { ingestPacked, R_HEADER, R_PROP_LEN } from './ingest';
export {
  decodeChunk, inputPtr, inputCap, fixupPtr, fixupCap, ownerOffset, ownerLength, outputPtr, chunkMaxTs,
  chunkRecords, chunkFallbacks, fallbackStart, fallbackEnd, statusCount, sampleCount, sampleStart,
  sampleEnd, sampleStatus, groupOf, ownerOfGroup, stagePtr, timesPtr, propsPtr,
} from './chunk';
// The counters' offsets in the state header, read by WasmKernel.counters() (one source of truth).
export {
  H_EVENTS, H_LATE, H_LATE_DROPPED, H_KEYS_DROPPED, H_CELLS_DROPPED, H_EVICTED, H_FUTURE_DROPPED, H_HELD, H_HELD_OVERFLOW,
  H_DUPLICATES, H_DEDUP_FULL,
} from './state';
export { heldCount } from './held';
export { setFieldName, setMaxLineBytes } from './decode';
export { hashBytes } from './hash';
export { dumpCells, dumpNextCursor, dumpAtMs, dumpFields } from './dump';
export { ringBytes } from './rings';
export {
  exportKeys, exportNextCursor, exportBytes, exportedKeys, importKeys, setEventTime, addCounter, exportHeld, exportHeldNextCursor, importHeld,
  keyName, keyProperty, keyScope, cellName, nameLength, nameAddress,
  changesKnown, exportRegion, exportBegin, exportSlice, exportProgress, exportAreaPtr, exportAreaLen, removedCount, removedPtr, SOURCE_ALL, SOURCE_CHANGED, AREA_PROPS, AREA_TITLES,
  E_GROUP, E_CELLS, E_NAMES, E_EXT, E_HEADER, E_KEY_BYTES, E_CELL_BYTES, EK_HASH, EK_SCOPE, EC_OPENED_AT, EC_LAST_RATIO, EC_LAST_EVAL,
} from './key-groups';
export { exportDedup, exportDedupNextCursor, importDedup, dedupGeometry } from './dedup';
