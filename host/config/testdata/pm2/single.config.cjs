module.exports = {
  name: 'cjs-single',
  script: 'npm',
  args: 'run start:prod',
  instances: 1,
};
