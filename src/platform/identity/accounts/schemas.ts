import { Type } from 'typebox';

// Password bounds and the body limit are shared with the sign-in routes: see ../schemas.ts.

/** A token from a mailed link (reset, email change). */
export const MailToken = Type.String({ minLength: 1, maxLength: 128 });

export const ProfileSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  email: Type.String(),
  username: Type.String(),
  emailVerified: Type.Boolean(),
  tier: Type.Union([Type.Literal('free'), Type.Literal('premium'), Type.Literal('enterprise')]),
  createdAt: Type.String({ format: 'date-time' }),
});
