const path = require('path');
const names = ['alpha', 'beta', 'gamma'];
console.log('the file may print; it is not the config');
module.exports = {
  apps: names.map((name, i) => ({
    name,
    script: path.join('services', name + '.js'),
    env: { PORT: 23400 + i, SERVICE: name.toUpperCase() },
  })),
};
