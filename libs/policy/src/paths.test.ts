import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { expandUser, parsePath, PathSyntaxError } from './paths.js';

/** A name as a policy may hold it: no separator, not "." or "..", no wildcard. */
const linuxName = fc
  .string({ minLength: 1, maxLength: 8, unit: 'binary' })
  .filter((s) => !s.includes('/') && !s.includes('*') && !s.includes('\u0000') && s !== '.' && s !== '..');
const windowsName = fc
  .stringMatching(/^[A-Za-z0-9 ._()-]{1,8}$/)
  .filter((s) => !/[. ]$/.test(s) && s !== '.' && s !== '..');

describe('paths', () => {
  it('property: a normalised Linux path reads back as its names', () => {
    fc.assert(
      fc.property(fc.array(linuxName, { maxLength: 6 }), (names) => {
        expect(parsePath('linux', '/' + names.join('/'))).toEqual(names);
        if (names.length > 0)
          expect(parsePath('linux', '~/' + names.join('/'))).toEqual(['home', '<user>', ...names]);
      }),
    );
  });

  it('property: anything not normalised is refused', () => {
    const spoil = fc.constantFrom('', '.', '..');
    fc.assert(
      fc.property(fc.array(linuxName, { maxLength: 4 }), spoil, fc.nat(), (names, bad, at) => {
        fc.pre(bad !== '' || names.length > 0); // "/" alone is the root
        const spoilt = [...names];
        spoilt.splice(at % (names.length + 1), 0, bad);
        expect(() => parsePath('linux', '/' + spoilt.join('/'))).toThrow(PathSyntaxError);
      }),
    );
  });

  it('property: Windows paths read the same whatever their case', () => {
    fc.assert(
      fc.property(
        fc.array(windowsName, { minLength: 1, maxLength: 5 }),
        fc.constantFrom('C', 'd'),
        (names, drive) => {
          const path = `${drive}:\\${names.join('\\')}`;
          const keys = parsePath('windows', path);
          expect(parsePath('windows', path.toUpperCase())).toEqual(keys);
          expect(parsePath('windows', path.toLowerCase())).toEqual(keys);
          expect(keys).toEqual([`${drive.toLowerCase()}:`, ...names.map((n) => n.toLowerCase())]);
        },
      ),
    );
  });

  it('reads ~ and the registry', () => {
    expect(parsePath('windows', '~\\AppData')).toEqual(['c:', 'users', '<user>', 'appdata']);
    expect(parsePath('windows', 'HKCU')).toEqual(['hkcu']);
    expect(parsePath('windows', 'hklm\\Software\\A:B')).toEqual(['hklm', 'software', 'a:b']); // keys may hold ":"
    expect(parsePath('linux', '~')).toEqual(['home', '<user>']);
    expect(parsePath('linux', '/')).toEqual([]);
    expect(parsePath('windows', 'C:\\')).toEqual(['c:']);
  });

  it('reads patterns: * within names, ** whole', () => {
    expect(parsePath('linux', '~/.cache/**', true)).toEqual(['home', '<user>', '.cache', '**']);
    expect(parsePath('windows', '~\\X\\*\\Cache\\**', true)).toEqual([
      'c:',
      'users',
      '<user>',
      'x',
      '*',
      'cache',
      '**',
    ]);
    expect(() => parsePath('linux', '~/x**', true)).toThrow('"**" must be a whole name');
    expect(() => parsePath('linux', '~/x*', false)).toThrow('no wildcards');
  });

  it('writes ~ and <user> out for a user', () => {
    expect(expandUser('linux', '~/.cache', 'ann')).toBe('/home/ann/.cache');
    expect(expandUser('linux', '/home/<user>', 'ann')).toBe('/home/ann');
    expect(expandUser('linux', '~', undefined)).toBe('/home/<user>');
    expect(expandUser('windows', '~\\AppData', 'Ann')).toBe('C:\\Users\\Ann\\AppData');
  });
});
