export { createHttpServer, ApiError, roles, roleAllows, redactUrl, CSRF_HEADER } from './http.js';
export { readCookie, sameOrigin, sessionCookie } from './cookies.js';
export { OperatorSockets } from './operator-sockets.js';
export { limitConnections, type ConnectionLimitOptions } from './connection-limit.js';
export type { HttpServerOptions, Operator, Role, SessionIdentity } from './http.js';
export { errorSchema } from './schemas.js';
export type { ErrorBody } from './schemas.js';
