// Mutation testing of the security-critical modules (not in CI: minutes per module).
//   npm run test:mutation                 every module, one after the other
//   STRYKER_MODULE=git-policy npx stryker run    one module
// Each module mutates only its own files and runs only the test files that exercise them, through
// the node test runner (a command runner: exit code 0 = mutant survived). Concurrency 1: the
// machine is shared.
import { mutationModules } from './scripts/mutation-modules.mjs';

const name = process.env.STRYKER_MODULE ?? 'git-policy';
const mod = mutationModules[name];
if (!mod) throw new Error(`unknown STRYKER_MODULE ${name}; one of ${Object.keys(mutationModules).join(', ')}`);

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  packageManager: 'npm',
  testRunner: 'command',
  commandRunner: {
    command: `node --import tsx --test --test-concurrency=1 --test-timeout=60000 ${mod.tests.join(' ')}`,
  },
  checkers: ['typescript'],
  tsconfigFile: 'tsconfig.json',
  typescriptChecker: { prioritizePerformanceOverAccuracy: true },
  mutate: mod.mutate,
  concurrency: 1,
  timeoutMS: 30_000,
  timeoutFactor: 2,
  coverageAnalysis: 'off',
  // .stryker-tmp: other modules' sandboxes, when several modules run at once.
  ignorePatterns: ['data', 'dist', 'reports', 'bench', '.stryker-tmp'],
  reporters: ['clear-text', 'progress', 'json'],
  jsonReporter: { fileName: `reports/mutation/${name}.json` },
  thresholds: { high: 90, low: 85, break: null },
  tempDirName: `.stryker-tmp/${name}`,
  cleanTempDir: 'always',
};
