import assert from 'node:assert/strict';
import { test } from 'node:test';
import { condaFunctions, pinRange } from '../../src/conda/functions.ts';
import { Evaluator } from '../../src/conda/jinja-eval.ts';
import { parseTemplate } from '../../src/conda/jinja-parse.ts';
import type { Dict } from '../../src/conda/jinja-values.ts';
import { parsePlatform, platformNames } from '../../src/conda/platform.ts';
import { isAccelError } from '../../src/core/errors.ts';

const VARIANT = {
  c_compiler: 'gcc',
  c_compiler_version: '13',
  cxx_compiler: 'gxx',
  c_stdlib: 'sysroot',
  c_stdlib_version: '2.17',
  python: '3.11',
  zlib: '1.3',
};

function globalsFor(subdir: string, variant: Record<string, string> = VARIANT): Dict {
  const target = parsePlatform(subdir);
  const all = { ...variant, target_platform: subdir };
  return {
    ...platformNames(target, parsePlatform('linux-64'), all),
    ...condaFunctions({
      file: 'meta.yaml',
      target,
      variant: all,
      outputs: new Map([
        ['libfoo', { version: '1.2.13', build: 'h1234567_0' }],
        ['foo-tools', { version: '1.2.13', build: 'h1234567_0' }],
      ]),
      usedPins: { value: false },
    }),
    environ: { HOME_DIR: '/home/me', EMPTY: '' },
  };
}

function render(src: string, subdir = 'linux-aarch64', variant?: Record<string, string>): string {
  return new Evaluator('meta.yaml', globalsFor(subdir, variant)).render(parseTemplate(src, 'meta.yaml')).text;
}

// Each Jinja form real feedstocks use, with the value conda-build (Jinja2 on Python) renders.
const FORMS: [string, string, string][] = [
  ['set and a variable', '{% set version = "1.2.13" %}{{ version }}', '1.2.13'],
  ['set from an expression', '{% set major = "1.2.13".split(".")[0] %}{{ major }}', '1'],
  ['set two names', '{% set a, b = ["x", "y"] %}{{ a }}{{ b }}', 'xy'],
  ['concatenation with ~', '{% set n = "zlib" %}{{ n ~ "-" ~ 1 }}', 'zlib-1'],
  ['filter lower', '{{ "LibFoo" | lower }}', 'libfoo'],
  ['filter upper', '{{ "abc"|upper }}', 'ABC'],
  ['filter replace (every occurrence)', '{{ "1.2.13" | replace(".", "_") }}', '1_2_13'],
  ['filter default on an undefined name', '{{ missing | default("fallback") }}', 'fallback'],
  ['filter default keeps a defined value', '{% set x = "v" %}{{ x | default("fallback") }}', 'v'],
  ['filter d (alias) with boolean', '{{ "" | d("empty", true) }}', 'empty'],
  ['filter join', '{{ ["a", "b", "c"] | join(",") }}', 'a,b,c'],
  ['filters chained', '{{ "A.B" | lower | replace(".", "") }}', 'ab'],
  ['filter int and length', '{{ "42" | int + 1 }} {{ [1, 2] | length }}', '43 2'],
  ['str.replace replaces every occurrence', '{{ "1.2.13".replace(".", "") }}', '1213'],
  ['str.split with maxsplit', '{{ "a-b-c".split("-", 1)[1] }}', 'b-c'],
  ['slice', '{{ "1.2.13"[:3] }} {{ [1, 2, 3][-2:] }}', '1.2 [2, 3]'],
  ['sep.join', '{{ ".".join(["1", "2"]) }}', '1.2'],
  ['format', '{{ "{}-{}".format("a", 2) }}', 'a-2'],
  ['environ[...]', '{{ environ["HOME_DIR"] }}', '/home/me'],
  ['environ.get with a default', '{{ environ.get("NOPE", "dflt") }}', 'dflt'],
  ['variant value', '{{ zlib }}', '1.3'],
  ['target_platform', '{{ target_platform }}', 'linux-aarch64'],
  ['compiler("c") for the target', "{{ compiler('c') }}", 'gcc_linux-aarch64 13'],
  ['compiler("cxx")', "{{ compiler('cxx') }}", 'gxx_linux-aarch64'],
  ['compiler default without variant', "{{ compiler('fortran') }}", 'gfortran_linux-aarch64'],
  ['stdlib("c")', "{{ stdlib('c') }}", 'sysroot_linux-aarch64 2.17'],
  ['cdt()', "{{ cdt('libx11-devel') }}", 'libx11-devel-cos7-aarch64'],
  ['pin_subpackage with max_pin', "{{ pin_subpackage('libfoo', max_pin='x.x') }}", 'libfoo >=1.2.13,<1.3.0a0'],
  ['pin_subpackage default max_pin x', "{{ pin_subpackage('libfoo') }}", 'libfoo >=1.2.13,<2.0a0'],
  ['pin_subpackage exact', "{{ pin_subpackage('libfoo', exact=True) }}", 'libfoo 1.2.13 h1234567_0'],
  ['pin_compatible from the variant', "{{ pin_compatible('zlib') }}", 'zlib >=1.3,<2.0a0'],
  [
    'pin_compatible with min_pin and max_pin',
    "{{ pin_compatible('zlib', min_pin='x', max_pin='x.x') }}",
    'zlib >=1,<1.4.0a0',
  ],
  ['pin_compatible bounds', "{{ pin_compatible('numpy', lower_bound='1.22', upper_bound='2') }}", 'numpy >=1.22,<2'],
  ['pin_compatible without a pin', "{{ pin_compatible('numpy') }}", 'numpy'],
  ['if true', '{% if linux %}L{% else %}O{% endif %}', 'L'],
  ['if/elif/else', '{% if osx %}M{% elif aarch64 %}A{% else %}X{% endif %}', 'A'],
  ['if with comparison and not', '{% if not win and target_platform != "linux-64" %}cross{% endif %}', 'cross'],
  ['if on an undefined name with is defined', '{% if cuda is defined %}cuda{% else %}cpu{% endif %}', 'cpu'],
  ['in and not in', '{{ "a" in ["a"] }} {{ "b" not in "abc" }}', 'True False'],
  ['conditional expression', '{{ "yes" if py >= 310 else "no" }}', 'yes'],
  ['for over a list', '{% for x in ["a", "b"] %}[{{ x }}]{% endfor %}', '[a][b]'],
  [
    'for with loop.index and unpacking',
    '{% for k, v in [["a", 1]] %}{{ loop.index }}{{ k }}{{ v }}{% endfor %}',
    '1a1',
  ],
  ['for with else on empty', '{% for x in [] %}x{% else %}none{% endfor %}', 'none'],
  ['comment', 'a{# ignored {{ x }} #}b', 'ab'],
  ['whitespace control', 'a  {%- set x = 1 -%}  \n b', 'ab'],
  ['Python str() of values', '{{ true }} {{ none }} {{ 3 }} {{ ["x"] }}', "True None 3 ['x']"],
  ['Python %-formatting', '{{ "python%s" % py }} {{ "%s-%s" % ("a", 1) }}', 'python311 a-1'],
  ['Python builtins', '{{ int("3") + 1 }} {{ str(2) ~ "x" }} {{ len([1, 2]) }}', '4 2x 2'],
  [
    'sequence repetition',
    '{{ "ab" * 2 }} {{ [1] * 2 }} {{ (1 == 1) * ["x"] }} {{ false * ["x"] }}',
    "abab [1, 1] ['x'] []",
  ],
  ['an undefined value inside a YAML comment renders empty', 'a: 1  # was {{ nope }}\n', 'a: 1  # was \n'],
  ['arithmetic', '{{ 7 // 2 }} {{ 7 % 4 }} {{ 2 * 3 - 1 }}', '3 3 5'],
];

for (const [what, src, expected] of FORMS) {
  test(`jinja: ${what}`, () => {
    assert.equal(render(src), expected);
  });
}

test('jinja: compiler() names the cross compiler of each target platform', () => {
  assert.equal(render("{{ compiler('c') }}", 'linux-64', {}), 'gcc_linux-64');
  assert.equal(render("{{ compiler('c') }}", 'linux-ppc64le', {}), 'gcc_linux-ppc64le');
  assert.equal(render("{{ compiler('c') }}", 'osx-arm64', {}), 'clang_osx-arm64');
  assert.equal(render("{{ compiler('cxx') }}", 'win-64', {}), 'vs2019_win-64');
});

test('jinja: rendered lines map back to source lines through a for loop', () => {
  const src = 'a\n{% for x in [1, 2, 3] %}\n- {{ x }}\n{% endfor %}\nz\n';
  const out = new Evaluator('m', {}).render(parseTemplate(src, 'm'));
  const lines = out.text.split('\n');
  assert.equal(lines.indexOf('z'), 8);
  assert.equal(out.lines[lines.indexOf('z')], 5);
  assert.equal(out.lines[lines.indexOf('- 2')], 3);
});

test('pinRange: components, short versions and letters', () => {
  assert.equal(pinRange('3.1.1', 'x.x.x', 'x'), '>=3.1.1,<4.0a0');
  assert.equal(pinRange('1.6.39', 'x.x.x.x.x.x', 'x.x'), '>=1.6.39,<1.7.0a0');
  assert.equal(pinRange('9e', 'x', 'x'), '>=9e,<10.0a0');
  assert.equal(pinRange('2', 'x.x', 'x.x.x'), '>=2,<3.0a0');
});

// Bad templates: each names the line and a stable code.
const ERRORS: [string, string, string, number][] = [
  ['undefined variable', 'a\nb\n{{ nope }}\n', 'ACCEL_CONDA_UNDEFINED', 3],
  ['undefined variable in a filter', '\n{{ nope | lower }}', 'ACCEL_CONDA_UNDEFINED', 2],
  ['undefined attribute', '{% set d = {} %}\n\n{{ d.missing }}', 'ACCEL_CONDA_UNDEFINED', 3],
  ['undefined in an if', '\n{% if nope == 1 %}x{% endif %}', 'ACCEL_CONDA_UNDEFINED', 2],
  ['macro is unsupported', 'x\n{% macro m() %}{% endmacro %}', 'ACCEL_CONDA_UNSUPPORTED', 2],
  ['include is unsupported', '{% include "x" %}', 'ACCEL_CONDA_UNSUPPORTED', 1],
  ['unknown filter', '\n\n{{ "a" | tojson }}', 'ACCEL_CONDA_UNSUPPORTED', 3],
  ['load_setup_py_data', '\n{% set d = load_setup_py_data() %}', 'ACCEL_CONDA_UNSUPPORTED', 2],
  ['unclosed tag', '\n{{ x ', 'ACCEL_CONDA_JINJA_SYNTAX', 2],
  ['missing endif', '{% if linux %}\nx\n', 'ACCEL_CONDA_JINJA_SYNTAX', 1],
  ['endfor without for', '\n{% endfor %}', 'ACCEL_CONDA_JINJA_SYNTAX', 2],
  ['bad expression', '\n\n\n{{ 1 + }}', 'ACCEL_CONDA_JINJA_SYNTAX', 4],
  ['pin_subpackage of an unknown output', "\n{{ pin_subpackage('other') }}", 'ACCEL_CONDA_PIN', 2],
];

for (const [what, src, code, line] of ERRORS) {
  test(`jinja error: ${what} → ${code} at line ${line}`, () => {
    assert.throws(
      () => render(src),
      (err: unknown) => {
        assert.ok(isAccelError(err), String(err));
        assert.equal(err.code, code);
        assert.match(err.message, new RegExp(`^meta\\.yaml:${line}: `));
        assert.equal(err.exitCode, 1);
        return true;
      },
    );
  });
}
