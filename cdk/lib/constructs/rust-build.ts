import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

/** The cargo workspace root (this file is cdk/lib/constructs/rust-build.ts). */
export const WORKSPACE_ROOT = path.resolve(__dirname, '..', '..', '..');

/**
 * Every cargo binary deployed as a function. All are built in the one workspace build, which
 * runs when the first function's asset is bundled — before later functions are even defined,
 * so the list is declared here rather than collected from the constructs.
 */
export const FUNCTION_BINARIES: readonly string[] = [
  'forward-api',
  'secret-rotation',
  // The four session pipeline steps (PIPELINE_STEP picks one).
  'session-pipeline',
  'ingest-api',
  'stream-processor',
  // Every realtime function (REALTIME_ROLE picks one).
  'realtime',
  // Every HTTP tunnel function (TUNNEL_ROLE picks one).
  'tunnel',
];

let lambdaDir: string | undefined;

/** Checks that a function's binary is one the workspace build produces. */
export function registerBinary(binary: string): void {
  if (!FUNCTION_BINARIES.includes(binary)) {
    throw new Error(
      `binary '${binary}' is not in FUNCTION_BINARIES (cdk/lib/constructs/rust-build.ts): add it there so the workspace build includes it`,
    );
  }
}

function run(command: string, args: string[], what: string): string {
  const result = spawnSync(command, args, {
    cwd: WORKSPACE_ROOT,
    encoding: 'utf8',
    // cargo's progress goes to our stderr; stdout stays clean for `cdk synth` output.
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.error && (result.error as NodeJS.ErrnoException).code === 'ENOENT') {
    throw new Error(
      `${what}: '${command}' is not on PATH. Run scripts/synth.sh (it installs cargo-lambda into .tools/), ` +
        'or `pip install cargo-lambda==1.9.2` and retry.',
    );
  }
  if (result.status !== 0) {
    throw new Error(`${what} failed (exit ${result.status ?? result.signal}); see the cargo output above`);
  }
  return result.stdout;
}

/**
 * Builds every function binary in ONE `cargo lambda build` (per-function builds would
 * recompile the shared dependency tree), once per synth. Returns the directory holding
 * `<binary>/bootstrap`.
 */
export function buildWorkspaceOnce(): string {
  if (lambdaDir === undefined) {
    const metadata = JSON.parse(run('cargo', ['metadata', '--no-deps', '--format-version', '1'], 'cargo metadata'));
    const bins = [...FUNCTION_BINARIES].sort().flatMap((b) => ['--bin', b]);
    // x86_64: the target whose std ships with this toolchain everywhere we build; see README.
    run('cargo', ['lambda', 'build', '--release', '--disable-optimizations', '--x86-64', ...bins], 'cargo lambda build');
    lambdaDir = path.join(metadata.target_directory as string, 'lambda');
  }
  return lambdaDir;
}
