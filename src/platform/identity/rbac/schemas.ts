import { Type } from 'typebox';
import { PERMISSION_PATTERN, ROLE_NAME_PATTERN } from './permissions.ts';

export const RoleName = Type.String({ pattern: ROLE_NAME_PATTERN, maxLength: 32 });
export const Permission = Type.String({
  pattern: PERMISSION_PATTERN,
  maxLength: 97,
  description: '`resource:action`, or `resource:*` for every action of the resource.',
});
export const Permissions = Type.Array(Permission, { maxItems: 200 });
