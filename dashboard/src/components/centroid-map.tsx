// The centroid map: the global centroids of every version projected to 2-D by one PCA of all
// versions together, each class in its colour, with its trail from the first version to the
// latest (the picture of the FedCC paper's Figure 1, drawn from the federation's own models).

import { useMemo } from 'preact/hooks';
import type { CentroidHistory } from '../api';
import { pca2 } from '../pca';

const WIDTH = 560;
const HEIGHT = 400;
const PAD = 28;

export function CentroidMap({ history }: { history: CentroidHistory }) {
  const { versions, k, classes } = history;
  const projection = useMemo(() => pca2(versions.flatMap((v) => v.centroids)), [versions]);
  if (versions.length === 0) {
    return <p class="empty">K x D = {k} x {history.codeDim} centroids are too many to draw here.</p>;
  }
  const { points, explained } = projection;
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  const [minX, maxX, minY, maxY] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  // One scale for both axes, so that distances on the map compare.
  const scale = Math.min((WIDTH - 2 * PAD) / Math.max(maxX - minX, 1e-12), (HEIGHT - 2 * PAD) / Math.max(maxY - minY, 1e-12));
  const sx = (x: number) => WIDTH / 2 + (x - (minX + maxX) / 2) * scale;
  const sy = (y: number) => HEIGHT / 2 - (y - (minY + maxY) / 2) * scale;
  const n = versions.length;
  const at = (v: number, c: number) => points[v * k + c];
  const latest = versions[n - 1];
  return (
    <figure class="centroid-map">
      <svg viewBox={`0 0 ${WIDTH} ${HEIGHT}`} role="img" aria-label="centroid map" data-testid="centroid-map" data-versions={n} data-classes={k}>
        <rect x="0" y="0" width={WIDTH} height={HEIGHT} class="map-frame" />
        {classes.map((cls) => {
          const trail = versions.map((_, v) => `${sx(at(v, cls.id)[0]).toFixed(1)},${sy(at(v, cls.id)[1]).toFixed(1)}`).join(' ');
          const [lx, ly] = at(n - 1, cls.id);
          return (
            <g key={cls.id} data-class={cls.id}>
              {n > 1 && <polyline points={trail} fill="none" stroke={cls.colour} stroke-width="1.5" stroke-opacity="0.6" />}
              {versions.slice(0, -1).map((version, v) => (
                <circle key={version.version} cx={sx(at(v, cls.id)[0])} cy={sy(at(v, cls.id)[1])} r="3" fill={cls.colour} fill-opacity={0.25 + (0.5 * v) / Math.max(1, n - 1)}>
                  <title>{`${cls.name} (class ${cls.id}), version ${version.version}`}</title>
                </circle>
              ))}
              <circle cx={sx(lx)} cy={sy(ly)} r="7" fill={cls.colour} stroke="#222" stroke-width="1" class="latest">
                <title>{`${cls.name} (class ${cls.id}), version ${latest.version} (latest)`}</title>
              </circle>
              <text x={sx(lx) + 9} y={sy(ly) + 4} class="map-label">{cls.name.length > 18 ? `${cls.name.slice(0, 17)}…` : cls.name}</text>
            </g>
          );
        })}
      </svg>
      <figcaption class="muted">
        PCA of the {k} centroids of {n} version{n === 1 ? '' : 's'} together (horizontal {(100 * explained[0]).toFixed(0)}% of the variance,
        vertical {(100 * explained[1]).toFixed(0)}%); large dots are version {latest.version}, lines the path of each class since version {versions[0].version}.
        {history.omittedVersions > 0 && ` ${history.omittedVersions} versions in between are left out.`}
      </figcaption>
    </figure>
  );
}
