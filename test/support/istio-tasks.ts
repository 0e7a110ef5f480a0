/**
 * The YAML of Istio's traffic-management tasks (istio.io/latest/docs/tasks/traffic-management/;
 * the Bookinfo files are istio/istio samples/bookinfo/networking/), as the live-config tests
 * apply them to the Kubernetes API test server.
 */

/** destination-rule-all.yaml, the reviews part. */
export const REVIEWS_RULE = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
spec:
  host: reviews
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
  - name: v3
    labels:
      version: v3
`;

/** virtual-service-reviews-test-v2.yaml (request routing: jason to v2). */
export const REVIEWS_TEST_V2 = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
    - reviews
  http:
  - match:
    - headers:
        end-user:
          exact: jason
    route:
    - destination:
        host: reviews
        subset: v2
  - route:
    - destination:
        host: reviews
        subset: v1
`;

/** virtual-service-reviews-v1.yaml / -v3.yaml (traffic shifting: 100 % to one version). */
export const reviewsAllTo = (version: string): string => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
    - reviews
  http:
  - route:
    - destination:
        host: reviews
        subset: ${version}
`;

/** virtual-service-reviews-50-v3.yaml (traffic shifting: 50 % v1, 50 % v3). */
export const REVIEWS_50_V3 = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
    - reviews
  http:
  - route:
    - destination:
        host: reviews
        subset: v1
      weight: 50
    - destination:
        host: reviews
        subset: v3
      weight: 50
`;

/** destination-rule-all.yaml, the ratings part. */
export const RATINGS_RULE = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: ratings
spec:
  host: ratings
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
`;

/** virtual-service-ratings-test-delay.yaml / -abort.yaml: `fault` is the fault block's YAML. */
export const ratingsFault = (fault: string): string => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ratings
spec:
  hosts:
  - ratings
  http:
  - match:
    - headers:
        end-user:
          exact: jason
    fault:
${fault}
    route:
    - destination:
        host: ratings
        subset: v1
  - route:
    - destination:
        host: ratings
        subset: v1
`;
export const RATINGS_DELAY = ratingsFault('      delay:\n        percentage:\n          value: 100.0\n        fixedDelay: 7s');
export const RATINGS_ABORT = ratingsFault('      abort:\n        percentage:\n          value: 100.0\n        httpStatus: 500');

/** The mirroring task: all to httpbin v1, a copy of each request to v2. */
export const HTTPBIN_MIRROR = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: httpbin
spec:
  hosts:
  - httpbin
  http:
  - route:
    - destination:
        host: httpbin
        subset: v1
      weight: 100
    mirror:
      host: httpbin
      subset: v2
    mirrorPercentage:
      value: 100.0
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: httpbin
spec:
  host: httpbin
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
`;

/** The circuit-breaking task's DestinationRule (v1alpha3, as the task writes it). */
export const HTTPBIN_BREAKER = `apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata:
  name: httpbin
spec:
  host: httpbin
  trafficPolicy:
    connectionPool:
      tcp:
        maxConnections: 1
      http:
        http1MaxPendingRequests: 1
        maxRequestsPerConnection: 1
    outlierDetection:
      consecutive5xxErrors: 1
      interval: 1s
      baseEjectionTime: 3m
      maxEjectionPercent: 100
`;

/** The locality failover task's DestinationRule (v1beta1), with or without its outlier detection. */
export const helloworldFailover = (outlier: boolean): string => `apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata:
  name: helloworld
spec:
  host: helloworld.sample.svc.cluster.local
  trafficPolicy:
    loadBalancer:
      simple: ROUND_ROBIN
      localityLbSetting:
        enabled: true
        failover:
          - from: region1
            to: region2
${outlier ? '    outlierDetection:\n      consecutive5xxErrors: 1\n      interval: 1s\n      baseEjectionTime: 1m\n' : ''}`;
