// Public surface of the outputs domain: SIEM-ready exports of the normalised attack records
// (json, raw_json, splunk, cef) to rotating files, syslog (UDP/TCP/TLS), Splunk HEC,
// Elasticsearch/OpenSearch _bulk and webhooks, each network output behind a durable backlog.
export { createOutputs } from './service.js';
export type { Outputs, OutputsOptions } from './service.js';
export { loadOutputs, parseOutputs, describeOutputs, OutputsConfigError } from './config.js';
export type { OutputConfig } from './config.js';
export { FileBacklog } from './backlog.js';
export type { OutputBacklog, BacklogBatch, BacklogPosition } from './backlog.js';
export { FORMATS, formatRecord, formatJson, formatSplunk, formatCef } from './format.js';
export type { OutputFormat, CefProduct } from './format.js';
export type { OutputEvent, Normaliser } from './records.js';
