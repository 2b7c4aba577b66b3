// Prints the resolved configuration with secrets masked (the modules' settings after the
// platform's); exits 78 when it is invalid.
import { knownModules } from '../src/app.ts';
import { ConfigError, EXIT_CONFIG, loadConfig, maskEnv } from '../src/platform/config/index.ts';

const modules = knownModules();
try {
  const config = loadConfig(process.env, { cwd: process.cwd(), modules });
  console.log(
    JSON.stringify(maskEnv(config.vars, { vars: config.moduleVars, slices: modules }), null, 2),
  );
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(error.message);
  process.exit(EXIT_CONFIG);
}
