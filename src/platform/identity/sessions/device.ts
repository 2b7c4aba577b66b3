import Bowser from 'bowser';

/** What a user agent says about the device: browser, operating system and platform names. */
export interface Device {
  /** `Chrome`, `Firefox`, `Safari`; null when the agent does not say. */
  browser: string | null;
  /** `macOS`, `Windows`, `iOS`, `Android`, `Linux`; null when the agent does not say. */
  os: string | null;
  /** `desktop`, `mobile`, `tablet`, `tv`, `bot`; null when the agent does not say. */
  platform: string | null;
}

const name = (value: string | undefined) => (value === undefined || value === '' ? null : value);

/** The device of a user agent (parsed by bowser; versions left out); null without an agent. */
export function parseDevice(userAgent: string | null): Device | null {
  if (userAgent === null || userAgent.trim() === '') return null;
  const parsed = Bowser.parse(userAgent);
  return {
    browser: name(parsed.browser.name),
    os: name(parsed.os.name),
    platform: name(parsed.platform.type),
  };
}

/**
 * The identity of a device for "have we seen it": browser, OS and platform, without versions (an
 * update is not a new device). Agents that say nothing all share one key.
 */
export function deviceKey(device: Device | null): string {
  return JSON.stringify([device?.browser ?? null, device?.os ?? null, device?.platform ?? null]);
}

/** Whether the device of `userAgent` is none of the devices of `known` (earlier sign-ins). */
export function isNewDevice(userAgent: string | null, known: readonly (string | null)[]): boolean {
  const key = deviceKey(parseDevice(userAgent));
  return !known.some((agent) => deviceKey(parseDevice(agent)) === key);
}

/** A device in words for a mail: `Chrome on macOS (desktop)`, `an unknown device`. */
export function describeDevice(userAgent: string | null): string {
  const device = parseDevice(userAgent);
  if (device === null || (device.browser ?? device.os ?? device.platform) === null)
    return 'an unknown device';
  const browser = device.browser ?? 'an unknown browser';
  const os = device.os === null ? '' : ` on ${device.os}`;
  const platform = device.platform === null ? '' : ` (${device.platform})`;
  return `${browser}${os}${platform}`.slice(0, 200);
}
