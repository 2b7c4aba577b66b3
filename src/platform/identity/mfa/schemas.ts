import { Type } from 'typebox';
import { BackupCode, Code, Password } from '../schemas.ts';
import { SMS_CODE_PATTERN } from './codes.ts';

export const SmsCode = Type.String({
  pattern: SMS_CODE_PATTERN,
  description: 'The 6-digit code of the latest SMS (valid 5 minutes, single use).',
});

export const BackupCodes = Type.Object({
  backupCodes: Type.Array(Type.String(), {
    description: 'Single-use recovery codes, shown this once: only their hashes are kept.',
  }),
});
export const PasswordAndFactor = Type.Object(
  {
    password: Password,
    code: Type.Optional(Code),
    backupCode: Type.Optional(BackupCode),
    smsCode: Type.Optional(SmsCode),
  },
  { examples: [{ password: 'violet-Harbor-83-quantum-Mosaic', code: '123456' }] },
);
export const PasskeySummary = Type.Object({
  id: Type.String({ format: 'uuid' }),
  name: Type.String(),
  createdAt: Type.String({ format: 'date-time' }),
  lastUsedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
});
export const MfaStatusSchema = Type.Object({
  totpEnabled: Type.Boolean(),
  backupCodesLeft: Type.Integer({ minimum: 0 }),
  sms: Type.Union([
    Type.Object({
      phoneNumber: Type.String({ description: 'Masked: `+44••••••3456`.' }),
      enabled: Type.Boolean({ description: 'False while waiting for the first code.' }),
    }),
    Type.Null(),
  ]),
  passkeys: Type.Array(PasskeySummary),
});
export const SmsEnrolBody = Type.Object(
  {
    phoneNumber: Type.String({
      minLength: 1,
      maxLength: 32,
      description:
        'With `+` and the country code (`+44 7911 123456`); spaces, dots, dashes and brackets allowed.',
    }),
  },
  { examples: [{ phoneNumber: '+44 7911 123456' }] },
);
export const SmsEnrolled = Type.Object({
  phoneNumber: Type.String({ description: 'The number in E.164, as it will be used.' }),
  expiresIn: Type.Integer({ description: 'Seconds the code sent is valid.' }),
});
export const TotpSetupSchema = Type.Object({
  secret: Type.String({ description: 'Base32, for typing it in by hand.' }),
  otpauthUri: Type.String({ description: '`otpauth://totp/...`' }),
  qrSvg: Type.String({ description: 'The URI as a QR code, an SVG document.' }),
});
