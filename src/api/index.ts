export { createHttpServer, ApiError, roles, roleAllows, redactUrl } from './http.js';
export { OperatorSockets } from './operator-sockets.js';
export { limitConnections, type ConnectionLimitOptions } from './connection-limit.js';
export type { HttpServerOptions, Operator, Role } from './http.js';
export { errorSchema } from './schemas.js';
export type { ErrorBody } from './schemas.js';
