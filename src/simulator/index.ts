// Public surface of the HoneyBee node simulator (`apiary node simulate`, tests, benchmarks).
export { SimulatedNode, SECRET_FILE_NAME } from './node.js';
export type {
  SimulatedNodeOptions,
  SimulatedNodeEvents,
  SimulatedNodeStats,
  SimulatedPot,
  SimulatorTransport,
  AttackEventForm,
  FailableCommand,
} from './node.js';
export { runSimulatorCli, SIMULATOR_USAGE } from './cli.js';
export type { SimulatorCliIo } from './cli.js';
export { AttackSession } from './attacks.js';
export type { AttackEvent } from './attacks.js';
