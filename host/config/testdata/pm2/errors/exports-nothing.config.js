const apps = [{ name: 'forgot', script: 'index.js' }];
