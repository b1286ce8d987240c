import { AccelError } from './errors.ts';

const UNITS: Record<string, number> = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };

/** Parses sizes the way ccache's max_size does: `500M`, `10G`, `1.5T`, plain bytes; binary units. */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$/i.exec(text);
  const unit = m ? UNITS[m[2]?.toUpperCase() ?? ''] : undefined;
  if (!m || unit === undefined) {
    throw new AccelError('ACCEL_USAGE_BAD_SIZE', `not a size: '${text}'`, {
      hint: 'write a number with an optional unit K, M, G or T (powers of 1024), e.g. 10G',
    });
  }
  return Math.floor(Number(m[1]) * unit);
}

export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let i = -1;
  do {
    value /= 1024;
    i++;
  } while (value >= 1024 && i < units.length - 1);
  return `${value.toFixed(value < 10 ? 2 : 1)} ${units[i]}`;
}
