// Try the model: drop an image (or pick one), choose a version and the refinement, and see the
// server's overlay (POST /segment, format=overlay with its legend) beside the image. The admin
// renames classes in place (PUT /v1/federations/{id}/classes); the overlay is then redrawn.

import { useEffect, useState } from 'preact/hooks';
import { seg, type Api, type ClassEntry, type Federation } from '../api';
import { ErrorLine, Section } from './common';

const IMAGE_TYPES = ['image/jpeg', 'image/png'];

export function TryIt({ api, federation: f, canRename, classes, onRenamed }: { api: Api; federation: Federation; canRename: boolean; classes?: ClassEntry[]; onRenamed: () => void }) {
  const [file, setFile] = useState<File | undefined>();
  const [imageUrl, setImageUrl] = useState<string | undefined>();
  const [overlayUrl, setOverlayUrl] = useState<string | undefined>();
  const [version, setVersion] = useState('latest');
  const [refine, setRefine] = useState<'none' | 'crf'>('none');
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<string | undefined>();
  const [shownVersion, setShownVersion] = useState<string | undefined>();
  const [dragging, setDragging] = useState(false);

  useEffect(() => () => { if (imageUrl) URL.revokeObjectURL(imageUrl); }, [imageUrl]);
  useEffect(() => () => { if (overlayUrl) URL.revokeObjectURL(overlayUrl); }, [overlayUrl]);

  const segment = async (image: File) => {
    setBusy(true);
    setProblem(undefined);
    try {
      const query = new URLSearchParams({ federation: f.id, version, format: 'overlay', legend: 'true', refine });
      const response = await api.request('POST', `/segment?${query}`, image, IMAGE_TYPES.includes(image.type) ? image.type : 'application/octet-stream');
      setShownVersion(response.headers.get('x-model-version') ?? undefined);
      setOverlayUrl(URL.createObjectURL(await response.blob()));
    } catch (err) {
      setOverlayUrl(undefined);
      setProblem((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  const choose = (chosen: File | undefined) => {
    if (!chosen) return;
    setFile(chosen);
    setImageUrl(URL.createObjectURL(chosen));
    void segment(chosen);
  };
  useEffect(() => { if (file) void segment(file); }, [version, refine]);

  const versions = Array.from({ length: f.latestModelVersion + 1 }, (_, v) => f.latestModelVersion - v);
  return (
    <Section title="Try it" id="try-it">
      <div class="row">
        <label class="inline">version <select name="version" value={version} onChange={(e) => setVersion((e.target as HTMLSelectElement).value)}>
          <option value="latest">latest</option>
          {versions.slice(0, 200).map((v) => <option key={v} value={String(v)}>{v}</option>)}
        </select></label>
        <label class="inline">refine <select name="refine" value={refine} onChange={(e) => setRefine((e.target as HTMLSelectElement).value as 'none' | 'crf')}>
          <option value="none">none</option>
          <option value="crf">dense CRF</option>
        </select></label>
      </div>
      <label
        class={`drop ${dragging ? 'dragging' : ''}`}
        data-testid="drop-zone"
        onDragOver={(e) => { e.preventDefault(); setDragging(true); }}
        onDragLeave={() => setDragging(false)}
        onDrop={(e) => { e.preventDefault(); setDragging(false); choose(e.dataTransfer?.files[0]); }}
      >
        Drop a JPEG or PNG image here, or click to choose one. It is segmented by the server with this federation's model and is not stored.
        <input type="file" name="image" accept="image/jpeg,image/png" onChange={(e) => choose((e.target as HTMLInputElement).files?.[0])} />
      </label>
      {busy && <p class="loading">Segmenting…</p>}
      <ErrorLine error={problem} />
      {imageUrl && (
        <div class="pair">
          <figure><img src={imageUrl} alt="the image" /><figcaption>image</figcaption></figure>
          {overlayUrl && <figure><img src={overlayUrl} alt="the overlay" data-testid="overlay" /><figcaption>overlay, model version {shownVersion}{refine === 'crf' ? ', dense CRF' : ''}</figcaption></figure>}
        </div>
      )}
      {classes && <ClassNames api={api} federation={f} classes={classes} canRename={canRename} onSaved={() => { onRenamed(); if (file) void segment(file); }} />}
    </Section>
  );
}

function ClassNames({ api, federation: f, classes, canRename, onSaved }: { api: Api; federation: Federation; classes: ClassEntry[]; canRename: boolean; onSaved: () => void }) {
  const [names, setNames] = useState<Record<number, string>>({});
  const [problem, setProblem] = useState<string | undefined>();
  const [saved, setSaved] = useState(false);
  const changed = Object.entries(names).some(([id, name]) => classes[Number(id)]?.name !== name);
  const save = async (event: Event) => {
    event.preventDefault();
    setProblem(undefined);
    // The whole table is replaced; ids still called `class <id>` with their default colour stay unnamed.
    const entries = classes
      .map((c) => ({ id: c.id, name: (names[c.id] ?? c.name).trim(), colour: c.colour }))
      .filter((c) => c.name !== `class ${c.id}` || names[c.id] !== undefined);
    try {
      await api.send('PUT', `/v1/federations/${seg(f.id)}/classes`, { classes: entries });
      setNames({});
      setSaved(true);
      onSaved();
    } catch (err) {
      setProblem((err as Error).message);
    }
  };
  return (
    <form class="classes" onSubmit={(e) => void save(e)} data-testid="classes">
      <h3>Classes</h3>
      <ul>
        {classes.map((c) => (
          <li key={c.id}>
            <span class="swatch" style={{ backgroundColor: c.colour }} />
            <span class="muted">{c.id}</span>
            {canRename
              ? <input name={`class-${c.id}`} value={names[c.id] ?? c.name} maxLength={64} onInput={(e) => { setSaved(false); setNames({ ...names, [c.id]: (e.target as HTMLInputElement).value }); }} />
              : <span>{c.name}</span>}
          </li>
        ))}
      </ul>
      {canRename && <div class="row"><button type="submit" disabled={!changed}>Save the names</button>{saved && <span class="muted">saved</span>}</div>}
      <ErrorLine error={problem} />
    </form>
  );
}
