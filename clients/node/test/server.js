// @ts-check
// A real gateway simulator and a real otari-batch-grpc server, started from the repository's .venv on loopback
// with port 0 (OTARI_REPO_ROOT overrides where the repository is). Each test file starts its own pair.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const ROOT = process.env.OTARI_REPO_ROOT ?? fileURLToPath(new URL('../../..', import.meta.url));

/**
 * Runs a program and resolves with group 1 of the first line of its output matching `ready`.
 * @param {string} program
 * @param {string[]} args
 * @param {Record<string, string>} env
 * @param {RegExp} ready
 * @returns {Promise<{child: import('node:child_process').ChildProcess, value: string}>}
 */
function start(program, args, env, ready) {
  const child = spawn(join(ROOT, '.venv/bin', program), args, {
    env: { ...process.env, PYTHONUNBUFFERED: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    /** @type {string[]} */
    const tail = [];
    let found = false;
    const timer = setTimeout(() => { stop(child); reject(new Error(`${program} was not ready in 30 s`)); }, 30_000);
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: /** @type {import('node:stream').Readable} */ (stream) }).on('line', (line) => {
        if (process.env.OTARI_TEST_LOGS) console.error(`[${program}] ${line}`);
        const match = ready.exec(line);
        if (!found && match) {
          found = true;
          clearTimeout(timer);
          resolve({ child, value: match[1] });
        } else if (!found) {
          tail.push(line);
        }
      });
    }
    child.on('error', (error) => { clearTimeout(timer); reject(error); });
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (!found) reject(new Error(`${program} exited (${code}) before it was ready:\n${tail.slice(-30).join('\n')}`));
    });
  });
}

/**
 * Ends a process this test started, by its pid: SIGTERM, then SIGKILL after 10 s.
 * @param {import('node:child_process').ChildProcess} child
 */
async function stop(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/**
 * Starts the simulator and the server.
 * @param {{stageSeconds?: number}} [options]
 */
export async function startServer(options = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'otari-node-test-'));
  const sim = await start('otari-batch-simulator',
    ['--host', '127.0.0.1', '--port', '0', '--stage-seconds', String(options.stageSeconds ?? 0.4)], {},
    /(http:\/\/127\.0\.0\.1:\d+)/);
  const exitHandler = () => { sim.child.kill('SIGKILL'); server?.child.kill('SIGKILL'); };
  process.once('exit', exitHandler);
  /** @type {{child: import('node:child_process').ChildProcess, value: string} | undefined} */
  let server;
  try {
    server = await start('otari-batch-grpc', [], {
      GATEWAY_URL: sim.value, GRPC_LISTEN: '127.0.0.1:0', STATE_DB: join(dir, 'state.db'),
      WATCH_POLL_MIN: '0.1', WATCH_POLL_MAX: '0.3', WATCH_HEARTBEAT: '2', SHUTDOWN_GRACE: '1',
    }, /serving on \S+ \(port (\d+)\)/);
  } catch (error) {
    await stop(sim.child);
    throw error;
  }
  const simURL = sim.value;
  const running = /** @type {NonNullable<typeof server>} */ (server);
  return {
    target: `127.0.0.1:${running.value}`,
    /**
     * Calls a control route of the simulator (/_simulator/faults, /_simulator/stats, ...).
     * @param {string} method
     * @param {string} path
     * @param {unknown} [body]
     * @returns {Promise<any>}
     */
    async simulator(method, path, body) {
      const response = await fetch(simURL + path, {
        method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body),
      });
      if (!response.ok) throw new Error(`simulator ${method} ${path}: ${response.status}`);
      return response.json();
    },
    async stop() {
      process.removeListener('exit', exitHandler);
      await stop(running.child);
      await stop(sim.child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
