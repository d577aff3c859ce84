// What every browser script of tests/e2e shares: a logger to stderr, the error type for an expected
// failure (printed without a stack), and the run: a watchdog, then exit code 0 / 1 (failed) / 2 (gave up).

export class Failure extends Error {}

export function logger(name) {
  return (message) => process.stderr.write(`${name}: ${message}\n`);
}

export async function runScript(main, { timeoutMs, log }) {
  const watchdog = setTimeout(() => {
    log(`gave up after ${timeoutMs / 1000} s`);
    process.exit(2);
  }, timeoutMs);
  watchdog.unref();
  try {
    await main();
    process.exitCode = 0;
  } catch (error) {
    log(`FAILED: ${error instanceof Failure ? error.message : (error?.stack ?? error)}`);
    process.exitCode = 1;
  }
}
