// CommonJS: require() of the (ES module) library gives the same exports as import. Prints them.
const library = require('../../dist/src/index.js');
const machines = require('../../dist/machines/index.js');
console.log(JSON.stringify({ exports: Object.keys(library).filter((k) => k !== '__esModule' && k !== 'module.exports').sort(), machine: typeof machines.connectionMachine }));
