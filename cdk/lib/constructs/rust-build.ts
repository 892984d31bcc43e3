import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

/** The cargo workspace root (this file is cdk/lib/constructs/rust-build.ts). */
export const WORKSPACE_ROOT = path.resolve(__dirname, '..', '..', '..');

const binaries = new Set<string>();
let lambdaDir: string | undefined;

/** Declares a binary to build; called when a function is defined, before any bundling. */
export function registerBinary(binary: string): void {
  if (lambdaDir !== undefined && !binaries.has(binary)) {
    throw new Error(`binary '${binary}' was registered after the workspace build ran`);
  }
  binaries.add(binary);
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
 * Builds every registered binary in ONE `cargo lambda build` (per-function builds would
 * recompile the shared dependency tree), once per synth. Returns the directory holding
 * `<binary>/bootstrap`.
 */
export function buildWorkspaceOnce(): string {
  if (lambdaDir === undefined) {
    const metadata = JSON.parse(run('cargo', ['metadata', '--no-deps', '--format-version', '1'], 'cargo metadata'));
    const bins = [...binaries].sort().flatMap((b) => ['--bin', b]);
    // x86_64: the target whose std ships with this toolchain everywhere we build; see README.
    run('cargo', ['lambda', 'build', '--release', '--disable-optimizations', '--x86-64', ...bins], 'cargo lambda build');
    lambdaDir = path.join(metadata.target_directory as string, 'lambda');
  }
  return lambdaDir;
}
