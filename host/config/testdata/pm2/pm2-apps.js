module.exports = {
  apps: [{ name: 'pm2-named', script: 'app.py', interpreter: 'python3' }],
};
