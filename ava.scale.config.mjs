// `npm run test:scale`: the many-peer swarms of test/scale (not part of `make test`).
export default {
  files: ["dist/test/scale/**/*.test.js"],
  timeout: "600s",
  concurrency: 1,
  workerThreads: false,
};
