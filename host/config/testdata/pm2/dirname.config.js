const path = require('path');
module.exports = {
  apps: [{
    name: 'nested',
    cwd: path.resolve(__dirname, 'services/api'),
    script: './bin/www',
    out_file: path.join(__dirname, 'logs', 'nested-out.log'),
    error_file: path.join(__dirname, 'logs', 'nested-err.log'),
  }],
};
