/** Emails and user names as stored and compared: NFKC, then lowercase. */
export function normalizeIdentifier(value: string): string {
  return value.normalize('NFKC').trim().toLowerCase();
}

// One plain address: printable ASCII local part without quotes or spaces, a dotted domain.
const EMAIL =
  /^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$/;

/**
 * The stored form of an address, or null when it is not one plain ASCII address once normalised.
 * NFKC folds compatibility forms (full-width `ａｄａ`, ligatures) onto ASCII; what remains
 * non-ASCII (Cyrillic `а` posing as Latin `a`) is refused rather than stored as a look-alike.
 */
export function normalizeEmail(value: string): string | null {
  const email = normalizeIdentifier(value);
  if (email.length > 254 || !EMAIL.test(email)) return null;
  const [local = ''] = email.split('@');
  return local.length <= 64 ? email : null;
}

const USERNAME = /^[a-z0-9_.-]{3,32}$/;

/** Names nobody may take: they impersonate staff or the service, or collide with routes. */
export const RESERVED_USERNAMES: ReadonlySet<string> = new Set([
  'abuse',
  'admin',
  'administrator',
  'anonymous',
  'api',
  'auth',
  'billing',
  'contact',
  'everyone',
  'groundwork',
  'guest',
  'help',
  'hostmaster',
  'info',
  'login',
  'logout',
  'mail',
  'me',
  'moderator',
  'no-reply',
  'noreply',
  'null',
  'official',
  'owner',
  'postmaster',
  'register',
  'root',
  'security',
  'settings',
  'signin',
  'signup',
  'staff',
  'support',
  'sys',
  'sysadmin',
  'system',
  'undefined',
  'user',
  'users',
  'webmaster',
  'www',
]);

/** The stored form of a user name, or null when it is malformed or reserved. */
export function normalizeUsername(value: string): string | null {
  const name = normalizeIdentifier(value);
  if (!USERNAME.test(name) || /^[._-]+$/.test(name) || RESERVED_USERNAMES.has(name)) return null;
  return name;
}

/** Passwords are compared in NFKC, so the same password typed on two keyboards matches. */
export function normalizePassword(value: string): string {
  return value.normalize('NFKC');
}
