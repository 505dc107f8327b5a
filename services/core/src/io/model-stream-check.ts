// A model file checked while its bytes arrive (uploads to the server): the header as soon as it is
// complete, then the values as they come, so that a bad upload is refused before its end and a good
// one is fully checked when its last byte lands. The same checks as decodeModel, without decoding.

import { checkModelHeader, type ModelExpectations, type ModelHeader } from './model-file.js';
import { checkFiniteValues, dtypeBytes, parseSafetensorsHeader, safetensorsHeaderEnd, SafetensorsError, type SafetensorsLayout } from './safetensors.js';

export interface StreamCheckExpectations extends ModelExpectations {
  /** Longest header accepted (a model's is a few kB; parsing a huge one would hold the thread). */
  maxHeaderBytes?: number;
}

export class ModelStreamCheck {
  private layout?: SafetensorsLayout;
  private header?: ModelHeader;
  /** The tensor being checked (layout order) and its next unchecked value. */
  private entry = 0;
  private value = 0;

  /** `file` will hold the whole file (its length is the declared one); it fills from the start. */
  constructor(private readonly file: Uint8Array, private readonly expect: StreamCheckExpectations = {}, private readonly what = 'model') {}

  /** Checks what is new in bytes [0, received) of the file. Throws the first problem found (a FussError). */
  advance(received: number): void {
    if (!this.layout) {
      const prefix = this.file.subarray(0, received);
      const end = safetensorsHeaderEnd(prefix, this.file.length, this.what, this.expect.maxHeaderBytes);
      if (received < end) return;
      this.layout = parseSafetensorsHeader(prefix, this.file.length, this.what, { dtypes: this.expect.dtypes ?? ['F32', 'F16'], maxHeaderBytes: this.expect.maxHeaderBytes });
      this.header = checkModelHeader(this.layout, this.expect, this.what);
    }
    const { entries, dataStart } = this.layout;
    const arrived = received - dataStart;
    while (this.entry < entries.length) {
      const e = entries[this.entry];
      const size = dtypeBytes(e.dtype);
      const count = (e.end - e.begin) / size;
      const upTo = Math.min(count, Math.floor((arrived - e.begin) / size));
      if (upTo > this.value) {
        checkFiniteValues(this.file, this.layout, e, this.value, upTo, this.what);
        this.value = upTo;
      }
      if (this.value < count) return;
      this.entry++;
      this.value = 0;
    }
  }

  /** After the file's last byte: its header, every value having been checked. */
  finish(): ModelHeader {
    this.advance(this.file.length);
    if (!this.header || !this.layout || this.entry < this.layout.entries.length) throw new SafetensorsError(`${this.what}: the file ended before its last value`);
    return this.header;
  }
}
