import { Type } from 'typebox';
import { BackupCode, Code, Password } from '../schemas.ts';

export const BackupCodes = Type.Object({
  backupCodes: Type.Array(Type.String(), {
    description: 'Single-use recovery codes, shown this once: only their hashes are kept.',
  }),
});
export const PasswordAndFactor = Type.Object({
  password: Password,
  code: Type.Optional(Code),
  backupCode: Type.Optional(BackupCode),
});
export const MfaStatusSchema = Type.Object({
  totpEnabled: Type.Boolean(),
  backupCodesLeft: Type.Integer({ minimum: 0 }),
});
export const TotpSetupSchema = Type.Object({
  secret: Type.String({ description: 'Base32, for typing it in by hand.' }),
  otpauthUri: Type.String({ description: '`otpauth://totp/...`' }),
  qrSvg: Type.String({ description: 'The URI as a QR code, an SVG document.' }),
});
