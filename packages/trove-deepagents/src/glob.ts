/**
 * Glob patterns as deepagents' `glob` tool describes them, matched against paths relative to the search
 * directory: `*` and `?` stay within one segment, `**` spans segments (`**∕` also matches none), `[...]`
 * is a character class and `{a,b}` an alternation. Dot files match like any other (deepagents' own backends
 * glob with `dot: true`).
 */
export function globToRegExp(pattern: string): RegExp {
  let re = '';
  let braces = 0;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        i++;
        if (pattern[i + 1] === '/') {
          i++;
          re += '(?:.*/)?';
        } else {
          re += '.*';
        }
      } else {
        re += '[^/]*';
      }
    } else if (c === '?') {
      re += '[^/]';
    } else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end === -1) {
        re += '\\[';
      } else {
        let body = pattern.slice(i + 1, end).replace(/\\/g, '\\\\');
        if (body.startsWith('!')) body = '^' + body.slice(1);
        re += '[' + body + ']';
        i = end;
      }
    } else if (c === '{') {
      braces++;
      re += '(?:';
    } else if (c === '}' && braces > 0) {
      braces--;
      re += ')';
    } else if (c === ',' && braces > 0) {
      re += '|';
    } else if (c === '\\' && i + 1 < pattern.length) {
      re += escape(pattern[++i]!);
    } else {
      re += escape(c);
    }
  }
  re += ')'.repeat(braces);
  return new RegExp('^' + re + '$', 'u');
}

function escape(c: string): string {
  return /[.+^${}()|[\]\\/]/.test(c) ? '\\' + c : c;
}
