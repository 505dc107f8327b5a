/** A fixed, distinguishable colour per class id for overlays (golden-angle hues). */
export function classColour(id: number): [number, number, number] {
  const hue = (id * 137.508) % 360;
  const c = 0.75;
  const x = c * (1 - Math.abs(((hue / 60) % 2) - 1));
  const [r, g, b] = hue < 60 ? [c, x, 0] : hue < 120 ? [x, c, 0] : hue < 180 ? [0, c, x] : hue < 240 ? [0, x, c] : hue < 300 ? [x, 0, c] : [c, 0, x];
  return [Math.round((r + 0.2) * 255), Math.round((g + 0.2) * 255), Math.round((b + 0.2) * 255)];
}
