// npm run test:mutation [module ...]: runs Stryker once per module, one at a time, and prints the
// mutation score of each. Reports: reports/mutation/<module>.json.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mutationModules } from './mutation-modules.mjs';

const wanted = process.argv.slice(2);
const names = wanted.length ? wanted : Object.keys(mutationModules);
const scores = [];
for (const name of names) {
  if (!mutationModules[name]) {
    console.error(`unknown module ${name}; one of ${Object.keys(mutationModules).join(', ')}`);
    process.exit(2);
  }
  const run = spawnSync('npx', ['stryker', 'run'], { stdio: 'inherit', env: { ...process.env, STRYKER_MODULE: name } });
  if (run.status !== 0) {
    console.error(`stryker failed for ${name} (exit ${run.status})`);
    process.exit(run.status ?? 1);
  }
  const report = JSON.parse(readFileSync(`reports/mutation/${name}.json`, 'utf8'));
  const counts = {};
  for (const file of Object.values(report.files)) for (const m of file.mutants) counts[m.status] = (counts[m.status] ?? 0) + 1;
  const killed = (counts.Killed ?? 0) + (counts.Timeout ?? 0);
  const valid = killed + (counts.Survived ?? 0) + (counts.NoCoverage ?? 0);
  scores.push({ module: name, score: valid ? ((100 * killed) / valid).toFixed(1) : 'n/a', ...counts });
}
console.table(scores);
