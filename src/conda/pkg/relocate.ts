/*
 * Prefix relocation as conda does it at install time. Text files: every occurrence of the placeholder is
 * replaced, whatever the lengths. Binary files: lengths must not change (offsets in an ELF file point past
 * the strings), so each NUL-terminated string holding the placeholder is rewritten with the target and
 * padded with NULs to its old length; a target longer than the placeholder cannot fit.
 */

export function replaceText(data: Buffer, placeholder: Buffer, target: Buffer): Buffer {
  const parts: Buffer[] = [];
  let from = 0;
  for (let at = data.indexOf(placeholder); at >= 0; at = data.indexOf(placeholder, from)) {
    parts.push(data.subarray(from, at), target);
    from = at + placeholder.length;
  }
  if (from === 0) return data;
  parts.push(data.subarray(from));
  return Buffer.concat(parts);
}

export function replaceBinary(data: Buffer, placeholder: Buffer, target: Buffer): Buffer {
  if (target.length > placeholder.length) throw new RangeError('target prefix longer than the placeholder');
  const out = Buffer.from(data);
  for (let at = out.indexOf(placeholder); at >= 0; ) {
    let end = out.indexOf(0, at);
    if (end < 0) end = out.length;
    const replaced = replaceText(out.subarray(at, end), placeholder, target);
    replaced.copy(out, at);
    out.fill(0, at + replaced.length, end);
    at = out.indexOf(placeholder, end);
  }
  return out;
}
