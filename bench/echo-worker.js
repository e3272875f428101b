// Piscina worker for the hand-off benchmark: touches its input and returns a number.
export default function echo(input) {
  return input.length ?? input.byteLength ?? 0;
}
