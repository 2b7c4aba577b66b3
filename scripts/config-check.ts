// Prints the resolved configuration with secrets masked; exits 78 when it is invalid.
import { ConfigError, EXIT_CONFIG, loadConfig, maskEnv } from '../src/platform/config/index.ts';

try {
  const config = loadConfig(process.env, { cwd: process.cwd() });
  console.log(JSON.stringify(maskEnv(config.vars), null, 2));
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(error.message);
  process.exit(EXIT_CONFIG);
}
