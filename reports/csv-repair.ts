/**
 * Repairs the CSV reports of a run that was killed: a torn last line (a write cut short by a
 * crash) is cut off, and rows that belong to no completed trial (steps and corrections are
 * written just before their trial's row) are cut from the end. Only whole rows at the end are
 * ever removed: every row before them stays byte for byte.
 */
import { closeSync, existsSync, ftruncateSync, openSync, readFileSync } from 'node:fs';
import { parse } from 'csv-parse/sync';

export interface RepairResult {
  /** Rows kept, as parsed (header columns as keys). */
  rows: Record<string, string>[];
  /** What was cut, for the manifest and the terminal; empty when the file was whole. */
  repairs: string[];
}

interface ParsedRow {
  record: Record<string, string>;
  /** Byte offset just after this row. */
  end: number;
}

function parseRows(buf: Buffer): { header: number; rows: ParsedRow[] } | undefined {
  try {
    const out = parse(buf, { columns: true, info: true, skip_empty_lines: false }) as { record: Record<string, string>; info: { bytes: number } }[];
    const nl = buf.indexOf(0x0a);
    return { header: nl < 0 ? buf.length : nl + 1, rows: out.map((r) => ({ record: r.record, end: r.info.bytes })) };
  } catch {
    return undefined;
  }
}

/**
 * Makes `file` end with a whole row, then keeps the longest prefix of rows for which `keep` is
 * true (all rows when no `keep`). Truncates the file in place.
 */
export function repairCsv(file: string, keep?: (row: Record<string, string>) => boolean): RepairResult {
  if (!existsSync(file)) return { rows: [], repairs: [] };
  let buf = readFileSync(file);
  const repairs: string[] = [];
  let length = buf.length;
  // A torn tail: the last write did not reach its newline.
  if (length > 0 && buf[length - 1] !== 0x0a) {
    const cut = buf.lastIndexOf(0x0a) + 1;
    repairs.push(`${file}: cut a torn last line (${length - cut} bytes)`);
    length = cut;
  }
  // A row cut inside a quoted cell ends on a newline but does not parse: drop lines until it does.
  let parsed = parseRows(buf.subarray(0, length));
  while (parsed === undefined && length > 0) {
    const cut = buf.subarray(0, length - 1).lastIndexOf(0x0a) + 1;
    repairs.push(`${file}: cut an unreadable last line (${length - cut} bytes)`);
    length = cut;
    parsed = parseRows(buf.subarray(0, length));
  }
  let rows = parsed?.rows ?? [];
  if (keep !== undefined) {
    const firstBad = rows.findIndex((r) => !keep(r.record));
    if (firstBad >= 0) {
      const end = firstBad === 0 ? (parsed?.header ?? 0) : rows[firstBad - 1]!.end;
      repairs.push(`${file}: cut ${rows.length - firstBad} row${rows.length - firstBad > 1 ? 's' : ''} of the trial that did not finish`);
      rows = rows.slice(0, firstBad);
      length = end;
    }
  }
  if (length !== buf.length) {
    const fd = openSync(file, 'r+');
    try {
      ftruncateSync(fd, length);
    } finally {
      closeSync(fd);
    }
    buf = buf.subarray(0, length);
  }
  return { rows: rows.map((r) => r.record), repairs };
}
