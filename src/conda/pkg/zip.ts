import { crc32 } from 'node:zlib';
import { AccelError } from '../../core/errors.ts';

/*
 * The outer container of a `.conda` is a zip whose members are all STORED (no compression): the members are
 * zstd tarballs already. That subset is small enough to write and read here, byte for byte reproducibly,
 * without a zip library: local headers, data, central directory, end record. No zip64: a member or archive
 * past 4 GiB is refused.
 */

interface ZipMember {
  name: string;
  data: Buffer;
}

const LOCAL_SIG = 0x04034b50;
const CENTRAL_SIG = 0x02014b50;
const END_SIG = 0x06054b50;
const MAX_32 = 0xffffffff;
/** Version 2.0 (the lowest that every reader accepts), made by UNIX (high byte 3). */
const VERSION_NEEDED = 20;
const VERSION_MADE_BY = (3 << 8) | 20;
/** Bit 11: names are UTF-8. */
const FLAG_UTF8 = 1 << 11;

/** MS-DOS date and time of a UTC instant (2-second resolution; years 1980–2107). */
function dosDateTime(ms: number): { date: number; time: number } {
  const d = new Date(Math.max(ms, Date.UTC(1980, 0, 1)));
  const date = ((d.getUTCFullYear() - 1980) << 9) | ((d.getUTCMonth() + 1) << 5) | d.getUTCDate();
  const time = (d.getUTCHours() << 11) | (d.getUTCMinutes() << 5) | Math.floor(d.getUTCSeconds() / 2);
  return { date, time };
}

/** A stored zip of `members` in the given order; the same members and mtime give the same bytes. */
export function writeStoredZip(members: ZipMember[], mtimeMs: number): Buffer {
  const { date, time } = dosDateTime(mtimeMs);
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const member of members) {
    const name = Buffer.from(member.name, 'utf8');
    const size = member.data.length;
    if (size >= MAX_32 || offset >= MAX_32)
      throw new Error(`zip member ${member.name} too large for a zip without zip64`);
    const crc = crc32(member.data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(LOCAL_SIG, 0);
    local.writeUInt16LE(VERSION_NEEDED, 4);
    local.writeUInt16LE(FLAG_UTF8, 6);
    local.writeUInt16LE(0, 8); // stored
    local.writeUInt16LE(time, 10);
    local.writeUInt16LE(date, 12);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(size, 18);
    local.writeUInt32LE(size, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(0, 28);
    const entry = Buffer.alloc(46);
    entry.writeUInt32LE(CENTRAL_SIG, 0);
    entry.writeUInt16LE(VERSION_MADE_BY, 4);
    entry.writeUInt16LE(VERSION_NEEDED, 6);
    entry.writeUInt16LE(FLAG_UTF8, 8);
    entry.writeUInt16LE(0, 10);
    entry.writeUInt16LE(time, 12);
    entry.writeUInt16LE(date, 14);
    entry.writeUInt32LE(crc, 16);
    entry.writeUInt32LE(size, 20);
    entry.writeUInt32LE(size, 24);
    entry.writeUInt16LE(name.length, 28);
    // extra, comment, disk number, internal attributes: 0
    entry.writeUInt32LE(((0o100644 << 16) >>> 0) as number, 38); // regular file, rw-r--r--
    entry.writeUInt32LE(offset, 42);
    parts.push(local, name, member.data);
    central.push(entry, name);
    offset += local.length + name.length + size;
  }
  const centralSize = central.reduce((n, b) => n + b.length, 0);
  if (offset + centralSize >= MAX_32) throw new Error('zip archive too large for a zip without zip64');
  const end = Buffer.alloc(22);
  end.writeUInt32LE(END_SIG, 0);
  end.writeUInt16LE(members.length, 8);
  end.writeUInt16LE(members.length, 10);
  end.writeUInt32LE(centralSize, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, ...central, end]);
}

function corrupt(what: string, file: string): AccelError {
  return new AccelError('ACCEL_CONDA_PACKAGE_NOT_ZIP', `${file}: not a readable .conda zip (${what})`, {
    hint: 'a .conda is an uncompressed zip; the file may be truncated or not a conda package',
  });
}

/**
 * The members of a stored zip, in central-directory order. Each member's local header must agree with the
 * central directory and its CRC must match: a truncated or altered package is refused, never half-read.
 */
export function readStoredZip(buf: Buffer, file: string): ZipMember[] {
  const endAt = findEnd(buf);
  if (endAt < 0) throw corrupt('no end-of-central-directory record', file);
  const count = buf.readUInt16LE(endAt + 10);
  const centralSize = buf.readUInt32LE(endAt + 12);
  let at = buf.readUInt32LE(endAt + 16);
  if (at + centralSize > endAt) throw corrupt('central directory out of bounds', file);
  const members: ZipMember[] = [];
  for (let i = 0; i < count; i++) {
    if (at + 46 > endAt || buf.readUInt32LE(at) !== CENTRAL_SIG) throw corrupt('bad central directory entry', file);
    const method = buf.readUInt16LE(at + 10);
    const crc = buf.readUInt32LE(at + 16);
    const compressed = buf.readUInt32LE(at + 20);
    const size = buf.readUInt32LE(at + 24);
    const nameLength = buf.readUInt16LE(at + 28);
    const extraLength = buf.readUInt16LE(at + 30);
    const commentLength = buf.readUInt16LE(at + 32);
    const localAt = buf.readUInt32LE(at + 42);
    const name = buf.subarray(at + 46, at + 46 + nameLength).toString('utf8');
    at += 46 + nameLength + extraLength + commentLength;
    if (method !== 0) {
      throw new AccelError(
        'ACCEL_CONDA_PACKAGE_NOT_ZIP',
        `${file}: zip member ${name} is compressed (method ${method})`,
        {
          hint: 'the members of a .conda must be stored uncompressed',
        },
      );
    }
    if (compressed !== size) throw corrupt(`member ${name} sizes disagree`, file);
    if (localAt + 30 > buf.length || buf.readUInt32LE(localAt) !== LOCAL_SIG)
      throw corrupt(`no local header for ${name}`, file);
    const dataAt = localAt + 30 + buf.readUInt16LE(localAt + 26) + buf.readUInt16LE(localAt + 28);
    if (dataAt + size > buf.length) throw corrupt(`member ${name} runs past the end`, file);
    const data = buf.subarray(dataAt, dataAt + size);
    if (crc32(data) !== crc) throw corrupt(`CRC mismatch in ${name}`, file);
    members.push({ name, data });
  }
  return members;
}

function findEnd(buf: Buffer): number {
  // The end record is 22 bytes plus a comment of up to 65535 bytes.
  const stop = Math.max(0, buf.length - 22 - 0xffff);
  for (let i = buf.length - 22; i >= stop; i--) {
    if (buf.readUInt32LE(i) === END_SIG) return i;
  }
  return -1;
}
