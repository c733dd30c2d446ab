import { MetricUnit, Metrics as PowertoolsMetrics } from '@aws-lambda-powertools/metrics';
import type { Log } from '../core/log.js';
import type { Metrics } from '../core/metrics.js';

/** CloudWatch namespace of every metric. */
export const METRICS_NAMESPACE = 'LiveKitMcpDispatch';

/**
 * Metrics as CloudWatch Embedded Metric Format through Powertools: each count is written at once
 * as one EMF line (a single-metric flush), so nothing waits for the end of an invocation and no
 * request can lose its counts. Dimension: `service`.
 */
export function createEmfMetrics(options: { service: string; namespace?: string }): Metrics {
  const metrics = new PowertoolsMetrics({
    namespace: options.namespace ?? METRICS_NAMESPACE,
    serviceName: options.service,
  });
  return {
    count(name, n = 1) {
      try {
        metrics.singleMetric().addMetric(name, MetricUnit.Count, n);
      } catch {
        // A metric is never worth failing a request for.
      }
    },
  };
}

/** Metrics as debug log lines (`npm start`: there is no CloudWatch to read EMF). */
export function createLogMetrics(log: Log): Metrics {
  return {
    count(name, n = 1) {
      log.debug('metric', { metric: name, value: n });
    },
  };
}
