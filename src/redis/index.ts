export { startSupervisedRedis, RedisDirInUseError, type SupervisedRedis, type SupervisedRedisOptions, type RedisLogger } from './supervisor.js';
export { startPrivateRedis, freePort, type PrivateRedis } from './private-server.js';
export { findLeftovers, readRecord, recordFileName, isAlive, type RedisRecord } from './leftover.js';
