// Names and colours of a federation's classes (class ids are stable across global versions, so a
// name given once holds for every later model). One set of rules for the server and the CLI.

import { FussError } from '../errors.js';

/** A class as people see it: its id in the model (0..K-1), a name and an optional #rrggbb colour. */
export interface ClassLabel {
  id: number;
  name: string;
  colour?: string;
}

/** Longest class name accepted. */
export const CLASS_NAME_MAX_LENGTH = 64;
/** Most classes a federation can have (its K is at most this). */
export const MAX_CLASSES = 1000;
/** A colour as six hex digits after '#'. */
export const COLOUR_PATTERN = /^#[0-9a-fA-F]{6}$/;
/** Control characters (NUL included), which a name may not hold. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/;

/** A set of class labels that breaks the rules of {@link validateClassLabels}. */
export class ClassLabelError extends FussError {
  constructor(message: string) {
    super(message, { status: 400, type: 'bad-classes' });
  }
}

/**
 * Checks class labels for a model with `k` classes: at most `k` entries, integer ids in 0..k-1 each
 * at most once, names of 1..{@link CLASS_NAME_MAX_LENGTH} characters with no control characters and
 * not only spaces, colours `#rrggbb`. Returns them sorted by id with colours lower-cased.
 *
 * @throws ClassLabelError naming the first offending entry
 */
export function validateClassLabels(classes: readonly ClassLabel[], k: number): ClassLabel[] {
  if (!Array.isArray(classes)) throw new ClassLabelError('classes must be an array of { id, name, colour? }');
  if (classes.length > k) throw new ClassLabelError(`got ${classes.length} classes, but the model has only ${k}`);
  const seen = new Set<number>();
  const out: ClassLabel[] = [];
  for (const [i, entry] of classes.entries()) {
    const { id, name, colour } = entry ?? ({} as ClassLabel);
    if (!Number.isInteger(id) || id < 0 || id >= k) throw new ClassLabelError(`classes[${i}]: id ${JSON.stringify(id)} is not an integer in 0..${k - 1}`);
    if (seen.has(id)) throw new ClassLabelError(`classes[${i}]: id ${id} is given more than once`);
    seen.add(id);
    if (typeof name !== 'string' || name.trim().length === 0) throw new ClassLabelError(`classes[${i}]: the name of class ${id} is empty`);
    if (name.length > CLASS_NAME_MAX_LENGTH) throw new ClassLabelError(`classes[${i}]: the name of class ${id} is longer than ${CLASS_NAME_MAX_LENGTH} characters`);
    if (CONTROL_CHARACTERS.test(name)) throw new ClassLabelError(`classes[${i}]: the name of class ${id} holds control characters`);
    if (colour !== undefined && (typeof colour !== 'string' || !COLOUR_PATTERN.test(colour))) {
      throw new ClassLabelError(`classes[${i}]: colour ${JSON.stringify(colour)} of class ${id} is not #rrggbb`);
    }
    out.push(colour === undefined ? { id, name } : { id, name, colour: colour.toLowerCase() });
  }
  return out.sort((a, b) => a.id - b.id);
}

/** A fixed, distinguishable colour per class id (golden-angle hues), for classes without one. */
export function classColour(id: number): [number, number, number] {
  const hue = (id * 137.508) % 360;
  const c = 0.75;
  const x = c * (1 - Math.abs(((hue / 60) % 2) - 1));
  const [r, g, b] = hue < 60 ? [c, x, 0] : hue < 120 ? [x, c, 0] : hue < 180 ? [0, c, x] : hue < 240 ? [0, x, c] : hue < 300 ? [x, 0, c] : [c, 0, x];
  return [Math.round((r + 0.2) * 255), Math.round((g + 0.2) * 255), Math.round((b + 0.2) * 255)];
}

/** `#rrggbb` of an RGB triple. */
export function colourHex([r, g, b]: readonly [number, number, number]): string {
  return `#${[r, g, b].map((v) => v.toString(16).padStart(2, '0')).join('')}`;
}

/** The RGB triple of `#rrggbb`. */
export function parseColour(hex: string): [number, number, number] {
  if (!COLOUR_PATTERN.test(hex)) throw new ClassLabelError(`colour ${JSON.stringify(hex)} is not #rrggbb`);
  return [parseInt(hex.slice(1, 3), 16), parseInt(hex.slice(3, 5), 16), parseInt(hex.slice(5, 7), 16)];
}

/**
 * Every id 0..k-1 with its name and colour: the given label where there is one, else `class <id>`
 * and {@link classColour}.
 */
export function classTable(k: number, labels: readonly ClassLabel[] = []): { id: number; name: string; colour: string }[] {
  const byId = new Map(labels.map((label) => [label.id, label]));
  return Array.from({ length: k }, (_, id) => {
    const label = byId.get(id);
    return { id, name: label?.name ?? `class ${id}`, colour: label?.colour ?? colourHex(classColour(id)) };
  });
}
