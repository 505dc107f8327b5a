// Request and response schema of a federation's class names and colours (TypeBox).

import { Type } from '@sinclair/typebox';
import { CLASS_NAME_MAX_LENGTH, MAX_CLASSES } from '@fuss/core';

export const ClassLabel = Type.Object(
  {
    id: Type.Integer({ minimum: 0, maximum: MAX_CLASSES - 1, description: 'Class id in the model, 0..K-1 (stable across global versions)' }),
    name: Type.String({ minLength: 1, maxLength: CLASS_NAME_MAX_LENGTH, pattern: '^[^\\u0000-\\u001F\\u007F]*$', description: 'What the class is, e.g. road; no control characters', examples: ['road'] }),
    colour: Type.Optional(Type.String({ pattern: '^#[0-9a-fA-F]{6}$', description: 'Overlay colour #rrggbb (default: a fixed colour per id)', examples: ['#804080'] })),
  },
  { $id: 'ClassLabel', additionalProperties: false },
);

export const ClassLabels = Type.Object(
  { classes: Type.Array(Type.Ref('ClassLabel'), { maxItems: MAX_CLASSES, description: 'Named classes, at most one entry per id; ids not listed keep their default name and colour' }) },
  { $id: 'ClassLabels', additionalProperties: false },
);
