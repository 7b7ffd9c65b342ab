module.exports = {
  apps: [{
    name: 'typed',
    script: 'src/index.ts',
    interpreter: 'node',
    interpreter_args: '--require ts-node/register',
    args: ['--color'],
  }],
};
