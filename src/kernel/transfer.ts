import { Piscina } from 'piscina';

/** Wraps a task result so Piscina transfers (not copies) the given buffers back to the main thread. */
export function transferring<T>(value: T, buffers: ArrayBufferLike[]): T {
  const wrapper = {
    [Piscina.transferableSymbol]: buffers,
    [Piscina.valueSymbol]: value,
  };
  return Piscina.move(wrapper as never) as unknown as T;
}
