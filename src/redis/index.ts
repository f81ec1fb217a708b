export { startSupervisedRedis, RedisDirInUseError, type SupervisedRedis, type SupervisedRedisOptions, type RedisLogger } from './supervisor.js';
export { startPrivateRedis, freePort, redisInline, type PrivateRedis } from './private-server.js';
export { findLeftovers, readRecord, recordFileName, isAlive, type RedisRecord } from './leftover.js';
export { parseRedisUrl, createRedisClient, queuePrefixFor, describeRedisTarget, type RedisTarget, type HostPort } from './target.js';
export { createRedisSubscriber, clusterNodesOf, type RedisSubscriber } from './subscriber.js';
