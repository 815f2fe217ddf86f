/** A version as the tools print it, reduced to what we compare on. */
export interface Version {
  major: number;
  minor: number;
  patch: number;
  /** The text it was read from, trimmed, for messages. */
  raw: string;
}

export type VersionLike = Version | string;

// Optional "v", optional Debian epoch ("2:"), then 1 to 3 numeric parts. Anything after
// (Debian revisions "+dfsg1", "~ds1-6+b4", kernel flavours "-28-amd64") is ignored: no rule
// here depends on it.
const VERSION_PATTERN = /^v?(?:\d+:)?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?![\d])/;

/** Reads "4.2.1", "26.1.5+dfsg1", "1.7.24~ds1-6+b4", "6.1.0-28-amd64"; undefined when it is not a version. */
export function parseVersion(text: string | undefined): Version | undefined {
  if (text === undefined) return undefined;
  const raw = text.trim();
  const match = VERSION_PATTERN.exec(raw);
  if (!match) return undefined;
  const [, major, minor, patch] = match;
  return {
    major: Number(major),
    minor: minor === undefined ? 0 : Number(minor),
    patch: patch === undefined ? 0 : Number(patch),
    raw,
  };
}

function toVersion(value: VersionLike): Version {
  if (typeof value !== 'string') return value;
  const parsed = parseVersion(value);
  // Strings passed here are constants in our own rules, so a bad one is a programming error.
  if (!parsed) throw new TypeError(`not a version: "${value}"`);
  return parsed;
}

/** Negative, zero or positive as a is older than, the same as, or newer than b (major.minor.patch only). */
export function compareVersions(a: VersionLike, b: VersionLike): number {
  const x = toVersion(a);
  const y = toVersion(b);
  return x.major - y.major || x.minor - y.minor || x.patch - y.patch;
}

/** True when v is known and at least min; an unknown version is never enough. */
export function atLeast(v: VersionLike | undefined, min: VersionLike): boolean {
  if (v === undefined) return false;
  const version = typeof v === 'string' ? parseVersion(v) : v;
  return version !== undefined && compareVersions(version, min) >= 0;
}

/** "4.2.1" from the numbers, without the distribution suffix. */
export function formatVersion(v: Version): string {
  return `${v.major}.${v.minor}.${v.patch}`;
}

/** "6.18" */
export function majorMinor(v: Version): string {
  return `${v.major}.${v.minor}`;
}
