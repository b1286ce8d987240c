/**
 * Every ref namespace, spelled once: a ref is a named pointer to a blob (refs.ts), and the namespace says whose
 * name it is. A feature names its refs through this table, never with a string of its own.
 */
export const REF_NS = {
  /** mirror: an upstream URL → the content last fetched from it (meta: UrlMeta). */
  url: 'url',
  /** mirror: an upstream's remembered 404 or 410 for a URL. */
  urlMissing: 'url-missing',
  /** mirror: a consistent snapshot of an apt suite (remap/suite/id → its Release). */
  aptEpoch: 'apt-epoch',
  /** mirror: the epoch an operator pinned for a suite. */
  aptPin: 'apt-pin',
  /** The action cache of Bazel's HTTP layout and the Remote Execution API: action digest → ActionResult. */
  cacheAc: 'cache-ac',
  /** cc: a compile's key → the manifest of its results by header digests. */
  ccManifest: 'cc-manifest',
  /** cc: a source (as the key names it) → the hashed ingredients of its latest keys, to explain a miss. */
  ccExplain: 'cc-explain',
  /** compiler facts by file identity: the version a compiler reports. */
  ccCompiler: 'cc-compiler',
  /** compiler facts by file identity: what the farm's toolchain key is made of. */
  farmToolchain: 'farm-toolchain',
  /** conda: the builder's history of builds. */
  condaBuilds: 'conda-builds',
  /** conda: a feedstock built with the same inputs before (its packages). */
  condaBuild: 'conda-build',
  /** conda: the files a feedstock's build scripts installed, kept to be put back. */
  condaBuildScripts: 'conda-build-scripts',
  /** conda: a package test that passed with the same inputs. */
  condaTest: 'conda-test',
  /** conda: a source pinned by md5 or sha1 only → the sha256 of what was fetched. */
  condaSourcePin: 'conda-source-pin',
  /** conda: an upstream channel's subdir → the repodata last fetched from it (meta: its URL and validators). */
  condaRepodata: 'conda-repodata',
} as const;
